"""Export and serving: the SavedModel export (:mod:`.export`), its TensorFlow graph
(:mod:`.signatures`), loading and querying an export (:mod:`.client`) and the TF Serving
REST API server (:mod:`.http`)."""
