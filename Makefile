# nlu-ci — the two commands a newcomer needs are `make run` and `make test`; both install what they need.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
MODELS_DIR ?= var/models
DATA ?= data/sample/nlu.json
PYTEST_ARGS ?=
# deployment (README "Deployment on Kubernetes")
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
IMAGE ?= nlu-ci:$(VERSION)
OVERLAY ?= k8s
NAMESPACE ?= nlu-ci

.PHONY: help install install-system run test test-core test-reliability lint clean manifests image image-test deploy deploy-manifests manual-run bench bench-again bench-entities bench-serving bench-eval bench-cv bench-memory bench-serve bench-job

help:  ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

install:  ## create $(VENV) with pinned dependencies, rasa_nlu 0.15.1 (--no-deps) and nlu-ci (idempotent)
	@scripts/install.sh $(VENV) --dev --editable

install-system:  ## Debian packages for the tests: prometheus (promtool), prometheus-pushgateway, buildah, podman, mmdebstrap
	@scripts/install-system.sh

run: install  ## run the job once on the bundled sample data, models under ./var/models (run twice: skipped)
	NLU_CI_MODELS_DIR=$${NLU_CI_MODELS_DIR:-$(MODELS_DIR)} NLU_CI_DATA=$${NLU_CI_DATA:-$(DATA)} \
	  NLU_CI_POLICY=$${NLU_CI_POLICY:-policy.yml} $(VENV)/bin/nlu-ci run

test: install install-system  ## every test (real rasa_nlu training, real Pushgateway/Prometheus, the image built and run, loopback servers)
	$(PY) -m pytest $(PYTEST_ARGS)

test-core: install  ## only the core job tests
	$(PY) -m pytest tests/core $(PYTEST_ARGS)

test-reliability: install install-system  ## fault matrix, SIGKILL crash consistency, concurrency, secrets (NLU_CI_SOAK=1: long soak)
	$(PY) -m pytest tests/reliability $(PYTEST_ARGS)

lint: install  ## ruff, hadolint, manifests (kustomize render, kubernetes-validate --strict, checkov)
	@scripts/lint.sh

bench: install  ## stock rasa_nlu vs nlu-ci, nlu-ci run vs scikit-learn, HWU64 1k-100k (~1 h); docs/bench/ (BENCH_ARGS=--quick|--fresh|--sizes ..|--only job)
	$(PY) bench/run_bench.py $(BENCH_ARGS)
	$(MAKE) --no-print-directory bench-entities
	$(MAKE) --no-print-directory bench-serving
	$(MAKE) --no-print-directory bench-eval
	$(MAKE) --no-print-directory bench-cv
	$(MAKE) --no-print-directory bench-memory
	$(MAKE) --no-print-directory bench-serve

bench-again: install  ## measure the rows of docs/bench that took under 300 s again (same code) and add the comparison to the page (~20 min)
	$(PY) bench/run_bench.py --again docs/bench $(BENCH_ARGS)

bench-job: install  ## only the `nlu-ci run` rows (9,960, 50k, 100k, vs both bare fits) and entity F1 over 5 example orders; the page keeps its other rows, marked (~25 min)
	$(PY) bench/run_bench.py --only job $(BENCH_ARGS)

bench-entities: install  ## entity confidence before/after calibration on HWU64 (ECE, median on right entities; ~10 min)
	$(PY) bench/entity_calibration.py --md docs/bench/entity_calibration.md > docs/bench/entity_calibration.json.tmp
	mv docs/bench/entity_calibration.json.tmp docs/bench/entity_calibration.json

bench-eval: install  ## evaluation utt/s on HWU64, with entities vs intents only, old vs new path (~2 min); docs/bench/evaluation.md
	$(PY) bench/eval_speed.py --md docs/bench/evaluation.md

bench-cv: install  ## cv config search on HWU64, K=5 x 3 configs, serial vs parallel (~1 h on a loaded machine); docs/bench/cv.md
	mkdir -p var/bench; $(PY) bench/cv_speed.py --md docs/bench/cv.md --rows var/bench/cv_rows.jsonl.tmp > docs/bench/cv.json.tmp
	mv docs/bench/cv.json.tmp docs/bench/cv.json; rm -f var/bench/cv_rows.jsonl.tmp

bench-memory: install  ## peak memory of the whole `nlu-ci run` tree at 9,960 and 100k (3 runs each), SIGTERM-to-exit at 100k with a Pushgateway, 100k with the CRF beside the intent fit (~7 min); docs/bench/memory.md
	$(PY) bench/memory.py $(BENCH_MEMORY_ARGS)
	$(PY) bench/memory.py --overlap --sizes 100000 --repeats 1 --sigterm-after 0

bench-serve: install  ## nlu-ci serve /parse req/s and p50/p99 on HWU64's model, lean vs rasa_nlu's server, wrk -c4 (~5 min); docs/bench/serving.md
	$(PY) bench/serve_speed.py --md docs/bench/serving.md $(BENCH_SERVE_ARGS)

bench-serving: install  ## failed requests and /parse latency while the served model is swapped under load (~5 min)
	$(PY) tests/serving/bench_swap.py --out-dir docs/bench $(BENCH_SERVING_ARGS)

manifests:  ## refresh k8s/ copies of nlu_config.yml, policy.yml and monitoring/ (kustomize reads only k8s/)
	@python3 scripts/sync_k8s.py

# OCI labels: version (pyproject), revision (git commit), source (the origin remote, without any credentials)
REVISION ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
SOURCE ?= $(shell git remote get-url origin 2>/dev/null | sed -E 's#^(https?://)[^/@]*@#\1#; s#^git@([^:]*):#https://\1/#; s#\.git$$##' || true)
BUILDER ?= $(if $(shell command -v docker 2>/dev/null),docker,buildah)
BASE_IMAGE ?=
IMAGE_BUILD_ARGS = --build-arg VERSION=$(VERSION) --build-arg REVISION=$(REVISION) \
  $(if $(SOURCE),--build-arg SOURCE=$(SOURCE)) $(if $(BASE_IMAGE),--build-arg BASE_IMAGE=$(BASE_IMAGE))

image:  ## build the container image IMAGE from image/Dockerfile with docker, else buildah (BASE_IMAGE=... to swap the base)
	@command -v $(BUILDER) >/dev/null || { echo "make image: neither docker nor buildah is installed here" >&2; exit 1; }
	$(if $(filter buildah,$(BUILDER)),buildah bud --format docker --isolation chroot --network host --layers,docker build) \
	  $(IMAGE_BUILD_ARGS) -f image/Dockerfile -t $(IMAGE) .

image-test: install install-system  ## build the image on a local Debian base (mmdebstrap + buildah) and run the job in it as uid 10001
	$(PY) -m pytest tests/k8s/test_image_build.py tests/k8s/test_kubelet_harness.py $(PYTEST_ARGS)

# make deploy: the overlay's own kustomization, plus, when IMAGE=name:tag or name@sha256:... is given (command
# line or environment), an `images:` entry (`kustomize edit set image` semantics) that sets every container and
# initContainer running the overlay's nlu-ci image (CronJobs and serving Deployments alike). The name it matches
# is the one the overlay's own `images:` entry gives, read from the rendered overlay's first CronJob. Without
# IMAGE= nothing is added: the overlay's `images:` entry wins.
DEPLOY_IMAGE = $(if $(filter command environment,$(origin IMAGE)),$(IMAGE))
var/deploy/kustomization.yaml: FORCE
	@mkdir -p var/deploy; set -e; img='$(DEPLOY_IMAGE)'; \
	{ printf '%s\n' "# generated by make deploy: $(OVERLAY)$${img:+ with image $$img}" \
	  'apiVersion: kustomize.config.k8s.io/v1beta1' 'kind: Kustomization' 'resources: [../../$(OVERLAY)]'; \
	  if [ -n "$$img" ]; then \
	    cur=$$(KUBECONFIG=/dev/null kubectl kustomize '$(OVERLAY)' \
	      | awk '/^---/{k=""} /^kind: /{k=$$2} k=="CronJob" && $$1=="image:"{print $$2; exit}'); \
	    [ -n "$$cur" ] || { echo "make deploy: no CronJob image in $(OVERLAY)" >&2; exit 2; }; \
	    name=$${cur%%@*}; case $${name##*/} in *:*) name=$${name%:*};; esac; \
	    printf '%s\n' 'images:' "  - name: $$name"; \
	    case $$img in \
	      *@*) printf '%s\n' "    newName: $${img%%@*}" "    digest: \"$${img#*@}\"";; \
	      *) case $${img##*/} in \
	           *:*) printf '%s\n' "    newName: $${img%:*}" "    newTag: \"$${img##*:}\"";; \
	           *) printf '%s\n' "    newName: $$img";; \
	         esac;; \
	    esac; \
	  fi; } > $@.tmp; mv $@.tmp $@

deploy-manifests: var/deploy/kustomization.yaml  ## print what `make deploy` applies (OVERLAY=k8s|k8s/overlays/dev|prod|multi-project, IMAGE=...)
	@KUBECONFIG=/dev/null kubectl kustomize var/deploy

deploy: var/deploy/kustomization.yaml  ## kubectl apply OVERLAY (default k8s) with IMAGE, in the current kube context
	kubectl apply -k var/deploy

CRONJOB ?= nlu-ci
manual-run:  ## start CRONJOB (default nlu-ci) in NAMESPACE now as a Job, follow its log, exit with the Job's result
	@job=nlu-ci-manual-$$(date +%s); ns=$(NAMESPACE); \
	kubectl -n $$ns create job --from=cronjob/$(CRONJOB) $$job || exit 1; \
	kubectl -n $$ns wait --for=create pod -l job-name=$$job --timeout=300s >/dev/null || exit 1; \
	kubectl -n $$ns logs -f job/$$job --pod-running-timeout=600s; \
	for _ in $$(seq 1 1440); do \
	  state=$$(kubectl -n $$ns get job $$job -o jsonpath='{.status.conditions[?(@.status=="True")].type}'); \
	  case " $$state " in *" Complete "*|*" Failed "*) break;; esac; sleep 5; \
	done; \
	kubectl -n $$ns describe job $$job | sed -n '/^Events:/,$$p'; \
	echo "job/$$job: $${state:-still running after 2 h}"; case " $$state " in *" Complete "*) exit 0;; *) exit 1;; esac

FORCE:

clean:  ## remove the local model store and caches (not the venv)
	rm -rf var .pytest_cache .ruff_cache
