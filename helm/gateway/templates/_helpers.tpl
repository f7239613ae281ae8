{{/* Names and labels (the conventions of `helm create`). */}}
{{- define "gateway.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "gateway.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "gateway.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "gateway.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "gateway.selectorLabels" -}}
app.kubernetes.io/name: {{ include "gateway.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "gateway.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "gateway.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "gateway.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* The Secret holding the encryption key and first admin password. */}}
{{- define "gateway.secretName" -}}
{{- default (include "gateway.fullname" .) .Values.secret.existingSecret }}
{{- end }}

{{/* Whether the chart renders its own Secret: for any secret value given inline. */}}
{{- define "gateway.ownsSecret" -}}
{{- $v := .Values }}
{{- if or (include "gateway.inlineKeys" .) (and $v.database.url (not $v.database.existingSecret)) (and $v.objectStorage.accessKeyId (not $v.objectStorage.existingSecret)) (include "gateway.inlineMetricsToken" .) }}true{{- end }}
{{- end }}

{{- define "gateway.inlineMetricsToken" -}}
{{- if and .Values.serviceMonitor.token (not .Values.serviceMonitor.tokenExistingSecret) }}true{{- end }}
{{- end }}

{{/* The Secret and key holding the /metrics token; empty when there is none. */}}
{{- define "gateway.metricsTokenSecret" -}}
{{- if .Values.serviceMonitor.tokenExistingSecret }}{{ .Values.serviceMonitor.tokenExistingSecret }}
{{- else if .Values.serviceMonitor.token }}{{ include "gateway.fullname" . }}{{- end }}
{{- end }}

{{- define "gateway.metricsTokenKey" -}}
{{- if .Values.serviceMonitor.tokenExistingSecret }}{{ .Values.serviceMonitor.tokenExistingSecretKey }}
{{- else }}metrics-token{{- end }}
{{- end }}

{{- define "gateway.inlineKeys" -}}
{{- if and (not .Values.secret.existingSecret) (or .Values.secret.secretKey .Values.secret.firstAdminPassword) }}true{{- end }}
{{- end }}

{{- define "gateway.scaledOut" -}}
{{- if gt (int .Values.replicaCount) 1 }}true{{- end }}
{{- end }}

{{/*
Several replicas share nothing but the database and the object store: refuse any setting that
would give each pod its own (SQLite, a blob directory, a generated key).
*/}}
{{- define "gateway.validate" -}}
{{- if include "gateway.scaledOut" . }}
{{- if not (or .Values.database.url .Values.database.existingSecret) }}
{{- fail "replicaCount > 1 needs an external PostgreSQL: set database.url (postgresql+psycopg://...) or database.existingSecret. SQLite on a volume serves one replica only." }}
{{- end }}
{{- if and .Values.database.url (not (hasPrefix "postgresql" .Values.database.url)) }}
{{- fail "replicaCount > 1 needs PostgreSQL: database.url must start with postgresql (SQLite serves one replica only)." }}
{{- end }}
{{- if not .Values.objectStorage.url }}
{{- fail "replicaCount > 1 needs shared blob storage: set objectStorage.url (s3://bucket/prefix?endpoint=...). A blob directory serves one replica only." }}
{{- end }}
{{- if not (or .Values.secret.secretKey .Values.secret.existingSecret) }}
{{- fail "replicaCount > 1 needs one encryption key for every replica: set secret.secretKey or secret.existingSecret." }}
{{- end }}
{{- end }}
{{- if and .Values.objectStorage.url (not (hasPrefix "s3://" .Values.objectStorage.url)) }}
{{- fail "objectStorage.url must be an s3:// URL (s3://bucket/prefix?endpoint=...)." }}
{{- end }}
{{- end }}
