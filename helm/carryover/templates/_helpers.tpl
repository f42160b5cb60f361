{{/* Release-wide name: the release name, with the chart name appended unless it already contains it. */}}
{{- define "carryover.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 40 | trimSuffix "-" -}}
{{- end -}}

{{- define "carryover.fullname" -}}
{{- $name := include "carryover.name" . -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else if contains $name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Name of one worker group's workload and of its headless Service (StatefulSet names: at most 52). */}}
{{- define "carryover.workerName" -}}
{{- printf "%s-%s" (include "carryover.fullname" .root) .name | trunc 52 | trimSuffix "-" -}}
{{- end -}}

{{- define "carryover.selectorLabels" -}}
app.kubernetes.io/name: {{ include "carryover.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "carryover.labels" -}}
{{ include "carryover.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end -}}

{{/* Labels selecting one worker group's pods: dict "root" $ "name" <group>. */}}
{{- define "carryover.workerSelectorLabels" -}}
{{ include "carryover.selectorLabels" .root }}
app.kubernetes.io/component: {{ .name }}
{{- end -}}

{{- define "carryover.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "carryover.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "carryover.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* The Secret and key CARRYOVER_ADMIN_TOKEN is read from; empty when no token is configured. */}}
{{- define "carryover.adminTokenSecretName" -}}
{{- if .Values.adminToken.existingSecret -}}
{{- .Values.adminToken.existingSecret -}}
{{- else if .Values.adminToken.value -}}
{{- printf "%s-admin" (include "carryover.fullname" .) -}}
{{- end -}}
{{- end -}}

{{- define "carryover.terminationGracePeriodSeconds" -}}
{{- add (ceil .Values.shutdownGraceSeconds | int) (.Values.terminationGraceExtraSeconds | int) -}}
{{- end -}}

{{/* Settings the chart sets itself: refused in .Values.config (values.schema.json says the same). */}}
{{- define "carryover.reservedSettings" -}}
CARRYOVER_ADMIN_TOKEN CARRYOVER_SHUTDOWN_GRACE_SECONDS CARRYOVER_ROLES CARRYOVER_STORE CARRYOVER_STANDBY_REPLICAS CARRYOVER_DATA_DIR CARRYOVER_WEB_HOST CARRYOVER_WEB_BIND CARRYOVER_WEB_PORT
{{- end -}}
