# The published image runs against an external MongoDB (MONGODB_URI); the embedded
# SecantusDB store is GPL-2.0-only and deliberately not part of the image.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md LICENSE ./
COPY scim_server ./scim_server
COPY samlkit ./samlkit
RUN pip install --no-cache-dir .
ENV SCIM_HOST=0.0.0.0 SCIM_PORT=8080
EXPOSE 8080
USER nobody
CMD ["scim-server", "serve"]
