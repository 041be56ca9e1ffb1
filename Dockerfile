# One image for the web (gunicorn) and the worker (rq): `sandan serve` or `sandan worker`.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    SANDAN_ENV=production \
    SANDAN_INSTANCE_DIR=/data

WORKDIR /app
RUN useradd --create-home --uid 10001 sandan && mkdir -p /data && chown sandan /data

# Dependencies first, so code changes do not reinstall them.
COPY setup.cfg pyproject.toml README.md ./
RUN mkdir -p backend workers miniprogram_mock \
    && touch backend/__init__.py workers/__init__.py miniprogram_mock/__init__.py \
    && pip install . && pip uninstall -y sandan

COPY backend ./backend
COPY workers ./workers
COPY miniprogram_mock ./miniprogram_mock
COPY migrations ./migrations
# Editable, so the migrations folder beside the code is found where the code is.
RUN pip install --no-deps -e .

USER sandan
EXPOSE 5000
HEALTHCHECK --interval=30s --timeout=3s CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:5000/healthz').status != 200)"
CMD ["sandan", "serve", "--host", "0.0.0.0", "--port", "5000"]
