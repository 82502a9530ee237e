"""Export and serving: the SavedModel export (:mod:`.export`), its TensorFlow graph
(:mod:`.signatures`, :mod:`.graph_ops`), loading and querying an export (:mod:`.client`),
batch recommendations (:mod:`.batch`), running an export as TF Serving does (:mod:`.session`)
and the TF Serving REST API server (:mod:`.http`, :mod:`.protocol`, :mod:`.batching`,
:mod:`.rest`, :mod:`.json_tensor`, :mod:`.openapi`)."""
