"""Cross-validated config search (``--cv-folds K`` with several ``--config``): ``folds`` (stratified,
deterministic folds of the training side), ``cv`` (one (config, fold) task, the scores, the choice; run in
forked processes), ``indexed`` (the same tasks as a Kubernetes Indexed Job, ``k8s/components/parallel-search``)."""
