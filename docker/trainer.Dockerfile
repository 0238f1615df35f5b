# The trainer image of atft_training_weekly's train task (setting training_backend=docker).
# Build it on the GPU host from the repository root:
#   docker build -f docker/trainer.Dockerfile -t gogooku3-trainer:latest .
# The task runs `python -m gogooku3.airflow.train_step ...` in it with every GPU requested
# (NVIDIA Container Toolkit on the host), the lake and a file-based MLflow store mounted
# at their host paths, and GOGOOKU_LAKE / MLFLOW_TRACKING_URI set; nothing secret.
# torch's CUDA libraries come from its wheels: the base needs only the host's driver.
FROM python:3.11-slim-bookworm

ENV PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    UV_NO_CACHE=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH

# lightgbm's OpenMP runtime
RUN apt-get update -qq \
 && apt-get install -y -qq --no-install-recommends libgomp1 \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/gogooku3
# the locked environment first, so code edits do not reinstall it
COPY requirements/lock.txt requirements/lock.txt
RUN pip install --quiet "uv==0.13.9" \
 && uv venv --quiet /opt/venv \
 && uv pip install --quiet --python /opt/venv/bin/python -r requirements/lock.txt

COPY pyproject.toml README.md ./
COPY configs configs
COPY plugins plugins
COPY spark_jobs spark_jobs
COPY training training
RUN uv pip install --quiet --python /opt/venv/bin/python --no-deps -e .

# run as an unprivileged user; the mounted lake and MLflow store must be writable by it
RUN useradd --create-home --uid 1000 trainer
USER trainer
CMD ["python", "-m", "gogooku3.airflow.train_step", "--help"]
