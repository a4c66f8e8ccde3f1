"""Every attribute, metric and environment-variable name genai-audit uses.

The GenAI semantic conventions (v1.41) are still moving between repositories
and renaming things, so no other module spells a name out: they import it
from here.
"""

from __future__ import annotations

from typing import Final

SEMCONV_VERSION: Final = "1.41.0"

# --- GenAI semantic conventions (spans) ---------------------------------------
OPERATION_NAME: Final = "gen_ai.operation.name"
PROVIDER_NAME: Final = "gen_ai.provider.name"
CONVERSATION_ID: Final = "gen_ai.conversation.id"
OUTPUT_TYPE: Final = "gen_ai.output.type"
REQUEST_MODEL: Final = "gen_ai.request.model"
REQUEST_CHOICE_COUNT: Final = "gen_ai.request.choice.count"
REQUEST_SEED: Final = "gen_ai.request.seed"
REQUEST_STREAM: Final = "gen_ai.request.stream"
REQUEST_MAX_TOKENS: Final = "gen_ai.request.max_tokens"
REQUEST_TEMPERATURE: Final = "gen_ai.request.temperature"
REQUEST_TOP_P: Final = "gen_ai.request.top_p"
REQUEST_TOP_K: Final = "gen_ai.request.top_k"
REQUEST_FREQUENCY_PENALTY: Final = "gen_ai.request.frequency_penalty"
REQUEST_PRESENCE_PENALTY: Final = "gen_ai.request.presence_penalty"
REQUEST_STOP_SEQUENCES: Final = "gen_ai.request.stop_sequences"
REQUEST_ENCODING_FORMATS: Final = "gen_ai.request.encoding_formats"
RESPONSE_ID: Final = "gen_ai.response.id"
RESPONSE_MODEL: Final = "gen_ai.response.model"
RESPONSE_FINISH_REASONS: Final = "gen_ai.response.finish_reasons"
RESPONSE_TIME_TO_FIRST_CHUNK: Final = "gen_ai.response.time_to_first_chunk"
USAGE_INPUT_TOKENS: Final = "gen_ai.usage.input_tokens"
USAGE_OUTPUT_TOKENS: Final = "gen_ai.usage.output_tokens"
USAGE_CACHE_READ_INPUT_TOKENS: Final = "gen_ai.usage.cache_read.input_tokens"
USAGE_CACHE_CREATION_INPUT_TOKENS: Final = "gen_ai.usage.cache_creation.input_tokens"
USAGE_REASONING_OUTPUT_TOKENS: Final = "gen_ai.usage.reasoning.output_tokens"
EMBEDDINGS_DIMENSION_COUNT: Final = "gen_ai.embeddings.dimension.count"
OPENAI_REQUEST_SERVICE_TIER: Final = "openai.request.service_tier"
OPENAI_RESPONSE_SERVICE_TIER: Final = "openai.response.service_tier"
OPENAI_RESPONSE_SYSTEM_FINGERPRINT: Final = "openai.response.system_fingerprint"

INPUT_MESSAGES: Final = "gen_ai.input.messages"
OUTPUT_MESSAGES: Final = "gen_ai.output.messages"
SYSTEM_INSTRUCTIONS: Final = "gen_ai.system_instructions"
TOOL_DEFINITIONS: Final = "gen_ai.tool.definitions"

SERVER_ADDRESS: Final = "server.address"
SERVER_PORT: Final = "server.port"
ERROR_TYPE: Final = "error.type"

# operation names
OP_CHAT: Final = "chat"
OP_EMBEDDINGS: Final = "embeddings"
OP_TEXT_COMPLETION: Final = "text_completion"
# provider names
PROVIDER_OPENAI: Final = "openai"
PROVIDER_ANTHROPIC: Final = "anthropic"

# --- audit context (general semantic conventions + gen_ai.audit.*) ------------
ENDUSER_ID: Final = "enduser.id"
SESSION_ID: Final = "session.id"
DEPLOYMENT_ENVIRONMENT: Final = "deployment.environment.name"
AUDIT_FEATURE: Final = "gen_ai.audit.feature"
AUDIT_CONSENT: Final = "gen_ai.audit.consent"
AUDIT_CLASSIFICATION: Final = "gen_ai.audit.classification"
AUDIT_REQUEST_ID: Final = "gen_ai.audit.request_id"
AUDIT_TENANT: Final = "gen_ai.audit.tenant"

# content bookkeeping
AUDIT_CONTENT_CAPTURED: Final = "gen_ai.audit.content.captured"
AUDIT_TRUNCATED: Final = "gen_ai.audit.content.truncated"
AUDIT_ORIGINAL_LENGTH_PREFIX: Final = "gen_ai.audit.content.original_length."
AUDIT_SHA256_PREFIX: Final = "gen_ai.audit.content.sha256."
AUDIT_STREAM_COMPLETED: Final = "gen_ai.audit.stream.completed"
AUDIT_STREAM_CHUNKS: Final = "gen_ai.audit.stream.chunks"
AUDIT_PROCESSING_FAILED: Final = "gen_ai.audit.processing.failed"

# processors: redaction, classification, injection, security, cost
AUDIT_PII_DETECTED: Final = "gen_ai.audit.pii.detected"
AUDIT_PII_TYPES: Final = "gen_ai.audit.pii.types"
AUDIT_PII_COUNT: Final = "gen_ai.audit.pii.count"
AUDIT_PII_TOKENS: Final = "gen_ai.audit.pii.tokens"  # the keyed pseudonyms found, for look-ups
AUDIT_SECRETS_DETECTED: Final = "gen_ai.audit.secrets.detected"
AUDIT_REDACTED: Final = "gen_ai.audit.redacted"
AUDIT_RETENTION_DAYS: Final = "gen_ai.audit.retention_days"
AUDIT_DECLARED_CLASSIFICATION: Final = "gen_ai.audit.classification.declared"
AUDIT_INJECTION_DETECTED: Final = "gen_ai.audit.injection.detected"
AUDIT_INJECTION_SCORE: Final = "gen_ai.audit.injection.score"
AUDIT_INJECTION_TECHNIQUE: Final = "gen_ai.audit.injection.technique"
AUDIT_INJECTION_SOURCE: Final = "gen_ai.audit.injection.source"
AUDIT_SECURITY_SCORE: Final = "gen_ai.audit.security_score"
USAGE_COST_USD: Final = "gen_ai.usage.cost_usd"
AUDIT_COST_UNKNOWN_MODEL: Final = "gen_ai.audit.cost.unknown_model"
AUDIT_ALERTS: Final = "gen_ai.audit.alerts"
# the audit pipeline's own losses (log documents of event PIPELINE_STATUS_EVENT): records lost since the
# previous status document, and the state of the durable spool when it was written
PIPELINE_STATUS_EVENT: Final = "genai_audit.pipeline.status"
AUDIT_PIPELINE_DROPPED: Final = "gen_ai.audit.pipeline.dropped"
AUDIT_PIPELINE_REFUSED: Final = "gen_ai.audit.pipeline.refused"
AUDIT_PIPELINE_DEAD_LETTERED: Final = "gen_ai.audit.pipeline.dead_lettered"
AUDIT_PIPELINE_LOST: Final = "gen_ai.audit.pipeline.lost"
AUDIT_PIPELINE_SPOOL_PENDING: Final = "gen_ai.audit.pipeline.spool.pending"
AUDIT_PIPELINE_SPOOL_BYTES: Final = "gen_ai.audit.pipeline.spool.bytes"
AUDIT_PIPELINE_SPOOL_QUOTA_BYTES: Final = "gen_ai.audit.pipeline.spool.quota_bytes"
AUDIT_PIPELINE_SPOOL_NEAR_FULL: Final = "gen_ai.audit.pipeline.spool.near_full"
# trace/span ids of the call, when whoever builds the record knows them: alerts carry them
AUDIT_TRACE_ID: Final = "gen_ai.audit.trace_id"
AUDIT_SPAN_ID: Final = "gen_ai.audit.span_id"
# processors' environment variables
ENV_PRICING_FILE: Final = "GENAI_AUDIT_PRICING_FILE"
ENV_ALERT_WEBHOOK: Final = "GENAI_AUDIT_ALERT_WEBHOOK"
ENV_ALERT_LOG: Final = "GENAI_AUDIT_ALERT_LOG"
ENV_ALERT_RATE: Final = "GENAI_AUDIT_ALERT_RATE"

# --- metrics --------------------------------------------------------------------
METRIC_TOKEN_USAGE: Final = "gen_ai.client.token.usage"
METRIC_OPERATION_DURATION: Final = "gen_ai.client.operation.duration"
METRIC_TIME_TO_FIRST_CHUNK: Final = "gen_ai.client.operation.time_to_first_chunk"
METRIC_TIME_PER_OUTPUT_CHUNK: Final = "gen_ai.client.operation.time_per_output_chunk"
#: an observable instrument that reports nothing: its callback records the pending metric points
#: of finished calls before every collection of the meter provider
METRIC_POINTS_FLUSH: Final = "gen_ai.audit.metric_points.flush"
TOKEN_TYPE: Final = "gen_ai.token.type"
TOKEN_BUCKETS: Final = tuple(float(4**i) for i in range(14))
DURATION_BUCKETS: Final = tuple(0.01 * 2**i for i in range(14))

# --- environment variables -------------------------------------------------------
ENV_ENABLED: Final = "GENAI_AUDIT_ENABLED"
ENV_STORE: Final = "GENAI_AUDIT_STORE"
ENV_CAPTURE_CONTENT: Final = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
ENV_MAX_CONTENT_CHARS: Final = "GENAI_AUDIT_MAX_CONTENT_CHARS"
ENV_OPENAI_STREAM_USAGE: Final = "GENAI_AUDIT_OPENAI_STREAM_USAGE"
ENV_INSTRUMENT: Final = "GENAI_AUDIT_INSTRUMENT"
ENV_PROPAGATE_THREADS: Final = "GENAI_AUDIT_PROPAGATE_THREADS"
ENV_EXPORT_DELAY_MS: Final = "GENAI_AUDIT_EXPORT_DELAY_MS"
ENV_METRIC_BATCH: Final = "GENAI_AUDIT_METRIC_BATCH"
ENV_CHUNK_METRIC: Final = "GENAI_AUDIT_CHUNK_METRIC"
ENV_ENVIRONMENT: Final = "GENAI_AUDIT_ENVIRONMENT"
ENV_LOG_LEVEL: Final = "GENAI_AUDIT_LOG_LEVEL"
ENV_SPOOL_DIR: Final = "GENAI_AUDIT_SPOOL_DIR"
ENV_SPOOL_QUOTA_MB: Final = "GENAI_AUDIT_SPOOL_QUOTA_MB"
ENV_JAEGER_URL: Final = "GENAI_AUDIT_JAEGER_URL"
