"""Developer tools of the source checkout: the local Elasticsearch node and the injection-model trainer."""
