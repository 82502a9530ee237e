"""Export and serving: the SavedModel export (:mod:`.export`), its TensorFlow graph
(:mod:`.servables`, :mod:`.graph_ops`, :mod:`.history`), loading and querying an export
(:mod:`.client`), batch recommendations (:mod:`.batch`), running an export as TF Serving
does (:mod:`.session`) and the TF Serving REST API server (:mod:`.http`, :mod:`.protocol`,
:mod:`.limits`, :mod:`.batching`, :mod:`.rest`, :mod:`.json_tensor`, :mod:`.openapi`)."""
