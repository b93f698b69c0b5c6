# The two commands of the README. Both set up what they need first (scripts/bootstrap.sh is a no-op
# once the environment, the horovod wheel and Delta's jars are cached).
.PHONY: demo test env models

env:
	./scripts/bootstrap.sh

demo: env
	./spark-submit.sh demo

test: env
	./scripts/test.sh

# The real-data models: labeled reviews from the pinned wheels -> silver -> linear + multitask champions.
models: env
	./spark-submit.sh --profile models models
