"""Kibana for the Elasticsearch audit store: dashboards, a forensic search, alert rules, and their installer.

- :mod:`genai_audit.kibana.lens`: Lens visualizations built from a small description of each panel.
- :mod:`genai_audit.kibana.panels`: what the Overview, Security and Cost dashboards show.
- :mod:`genai_audit.kibana.objects`: the data view, the Forensics search, the dashboards; every saved
  object with a stable id, as the NDJSON ``POST /api/saved_objects/_import`` takes.
- :mod:`genai_audit.kibana.rules`: the ``.es-query`` alert rules.
- :mod:`genai_audit.kibana.client` and :mod:`genai_audit.kibana.install`: ``genai-audit kibana install``.
- :mod:`genai_audit.kibana.cli`: the ``genai-audit kibana`` commands.

Everything reads the stored documents through the field names of :mod:`genai_audit.semconv`, as the
index templates of :mod:`genai_audit.store.elasticsearch` map them.
"""
