# One image for every Kaizen process; docker-compose.yml picks the process.
FROM python:3.13-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 KAIZEN_VAR_DIR=/var/lib/kaizen
WORKDIR /srv/kaizen
COPY pyproject.toml README.md ./
COPY portal portal
COPY departments departments
COPY optimizations optimizations
COPY examples examples
COPY templates templates
COPY locale locale
COPY static static
COPY manage.py ./
RUN pip install --no-cache-dir . \
 && mkdir -p /var/lib/kaizen \
 && KAIZEN_ENV=embedded python manage.py collectstatic --noinput \
 && rm -f /var/lib/kaizen/secret_key /var/lib/kaizen/encryption_key
EXPOSE 8000
CMD ["python", "-m", "portal.processes", "web"]
