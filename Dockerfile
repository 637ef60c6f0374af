# One image for web, worker, gpu-worker. GPU workers get the CUDA build of torch via TORCH_INDEX.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 DJANGO_SETTINGS_MODULE=config.settings.production
WORKDIR /app
RUN apt-get update && apt-get install -y --no-install-recommends libpq5 && rm -rf /var/lib/apt/lists/*
COPY requirements.txt .
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
RUN pip install --no-cache-dir --extra-index-url ${TORCH_INDEX} -r requirements.txt
COPY . .
RUN DJANGO_SECRET_KEY=build-only DJANGO_ALLOWED_HOSTS=localhost python manage.py collectstatic --noinput
RUN useradd --create-home studio && chown -R studio /app
USER studio
EXPOSE 8000
# The configuration bench/labeling.py measures (config/gunicorn_conf.py; GUNICORN_* variables change it).
CMD ["gunicorn", "-c", "config/gunicorn_conf.py", "config.wsgi"]
