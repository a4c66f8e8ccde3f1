"""Which provider an ``openai`` client talks to: ``gen_ai.provider.name`` from its class and endpoint.

Many providers serve the OpenAI API, and the semantic conventions (v1.41) say a
listed ``gen_ai.provider.name`` value must be used when it applies. The Azure
client classes are Azure OpenAI whatever their endpoint; other clients are
known by their endpoint's host. An endpoint not listed here (a gateway, a local
server) is reported as ``openai``, the API it speaks.
"""

from __future__ import annotations

from typing import Any

from genai_audit import semconv as sc

#: host suffix -> provider name (a suffix matches the host itself or any subdomain of it)
_HOSTS: tuple[tuple[str, str], ...] = (
    ("openai.azure.com", "azure.ai.openai"),
    ("cognitiveservices.azure.com", "azure.ai.openai"),
    ("services.ai.azure.com", "azure.ai.inference"),
    ("models.ai.azure.com", "azure.ai.inference"),
    ("inference.ai.azure.com", "azure.ai.inference"),
    ("api.deepseek.com", "deepseek"),
    ("api.x.ai", "x_ai"),
    ("api.groq.com", "groq"),
    ("api.perplexity.ai", "perplexity"),
    ("api.mistral.ai", "mistral_ai"),
    ("generativelanguage.googleapis.com", "gcp.gemini"),
    ("aiplatform.googleapis.com", "gcp.vertex_ai"),
    ("api.anthropic.com", "anthropic"),
    ("api.cohere.ai", "cohere"),
    ("api.cohere.com", "cohere"),
    ("amazonaws.com", "aws.bedrock"),
    ("cloud.ibm.com", "ibm.watsonx.ai"),
)
_AZURE_CLASSES = frozenset({"AzureOpenAI", "AsyncAzureOpenAI"})
_cache: dict[tuple[type, str | None], str] = {}


def provider_name(client: Any, host: Any) -> str:
    """``gen_ai.provider.name`` for an ``openai`` client whose endpoint's host is ``host``."""
    key = (type(client), host if isinstance(host, str) else None)
    found = _cache.get(key)
    if found is not None:
        return found
    found = sc.PROVIDER_OPENAI
    if type(client).__name__ in _AZURE_CLASSES:
        found = "azure.ai.openai"
    elif isinstance(host, str):
        lowered = host.lower().rstrip(".")
        for suffix, name in _HOSTS:
            if lowered == suffix or lowered.endswith("." + suffix):
                found = name
                break
    if len(_cache) > 256:
        _cache.clear()
    _cache[key] = found
    return found
