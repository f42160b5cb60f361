{{/* The pod template of one worker group: dict "root" $ "name" <group> "w" <group values>. */}}
{{- define "carryover.podTemplate" -}}
{{- $root := .root -}}
{{- $w := .w -}}
{{- $headless := include "carryover.workerName" . -}}
{{- $stateful := eq $w.kind "StatefulSet" -}}
{{- $adminSecret := include "carryover.adminTokenSecretName" $root -}}
metadata:
  labels:
    {{- include "carryover.workerSelectorLabels" . | nindent 4 }}
    {{- if $w.serveWebView }}
    carryover.dev/web-view: "true"
    {{- end }}
  annotations:
    checksum/config: {{ include (print $root.Template.BasePath "/configmap.yaml") $root | sha256sum }}
    checksum/secret: {{ include (print $root.Template.BasePath "/secret.yaml") $root | sha256sum }}
    {{- if $root.Values.metrics.podAnnotations }}
    prometheus.io/scrape: "true"
    prometheus.io/port: {{ $root.Values.web.port | quote }}
    prometheus.io/path: /metrics
    {{- end }}
    {{- with $w.podAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  serviceAccountName: {{ include "carryover.serviceAccountName" $root }}
  automountServiceAccountToken: false
  terminationGracePeriodSeconds: {{ include "carryover.terminationGracePeriodSeconds" $root }}
  {{- with $root.Values.imagePullSecrets }}
  imagePullSecrets: {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $root.Values.podSecurityContext }}
  securityContext: {{- toYaml . | nindent 4 }}
  {{- end }}
  containers:
    - name: worker
      image: {{ include "carryover.image" $root | quote }}
      imagePullPolicy: {{ $root.Values.image.pullPolicy }}
      args: {{- toYaml $root.Values.args | nindent 8 }}
      envFrom:
        - configMapRef: {name: {{ include "carryover.fullname" $root }}}
        {{- if $root.Values.secretEnv.existingSecret }}
        - secretRef: {name: {{ $root.Values.secretEnv.existingSecret }}}
        {{- end }}
        {{- if $root.Values.secretEnv.values }}
        - secretRef: {name: {{ include "carryover.fullname" $root }}-env}
        {{- end }}
      env:
        - name: POD_NAME
          valueFrom: {fieldRef: {fieldPath: metadata.name}}
        - name: POD_NAMESPACE
          valueFrom: {fieldRef: {fieldPath: metadata.namespace}}
        - name: POD_IP
          valueFrom: {fieldRef: {fieldPath: status.podIP}}
        - {name: CARRYOVER_ROLES, value: {{ join "," $w.roles | quote }}}
        - {name: CARRYOVER_STORE, value: {{ $w.store | quote }}}
        - {name: CARRYOVER_STANDBY_REPLICAS, value: {{ $w.standbyReplicas | quote }}}
        - {name: CARRYOVER_DATA_DIR, value: {{ $root.Values.dataDir | quote }}}
        - {name: CARRYOVER_SHUTDOWN_GRACE_SECONDS, value: {{ $root.Values.shutdownGraceSeconds | quote }}}
        {{- if $stateful }}
        # Advertised to the other workers (Faust's router): this pod's stable name under the headless Service.
        - name: CARRYOVER_WEB_HOST
          value: "$(POD_NAME).{{ $headless }}.$(POD_NAMESPACE).svc.{{ $root.Values.clusterDomain }}"
        {{- else }}
        # A Deployment's pods have no stable name: advertise the pod IP.
        - name: CARRYOVER_WEB_HOST
          value: "$(POD_IP)"
        {{- end }}
        - {name: CARRYOVER_WEB_BIND, value: "0.0.0.0"}
        - {name: CARRYOVER_WEB_PORT, value: {{ $root.Values.web.port | quote }}}
        {{- if $adminSecret }}
        - name: CARRYOVER_ADMIN_TOKEN
          valueFrom:
            secretKeyRef: {name: {{ $adminSecret }}, key: {{ $root.Values.adminToken.key }}}
        {{- end }}
        {{- range $k, $v := $w.env }}
        - {name: {{ $k }}, value: {{ $v | quote }}}
        {{- end }}
        {{- with $root.Values.extraEnv }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      ports:
        - {name: web, containerPort: {{ $root.Values.web.port }}, protocol: TCP}
      {{- with $root.Values.probes }}
      startupProbe:
        httpGet: {path: {{ .startup.path }}, port: web}
        periodSeconds: {{ .startup.periodSeconds }}
        timeoutSeconds: {{ .startup.timeoutSeconds }}
        failureThreshold: {{ .startup.failureThreshold }}
      livenessProbe:
        httpGet: {path: {{ .liveness.path }}, port: web}
        periodSeconds: {{ .liveness.periodSeconds }}
        timeoutSeconds: {{ .liveness.timeoutSeconds }}
        failureThreshold: {{ .liveness.failureThreshold }}
      readinessProbe:
        httpGet: {path: {{ .readiness.path }}, port: web}
        periodSeconds: {{ .readiness.periodSeconds }}
        timeoutSeconds: {{ .readiness.timeoutSeconds }}
        failureThreshold: {{ .readiness.failureThreshold }}
      {{- end }}
      resources: {{- toYaml $w.resources | nindent 8 }}
      {{- with $root.Values.containerSecurityContext }}
      securityContext: {{- toYaml . | nindent 8 }}
      {{- end }}
      volumeMounts:
        - {name: data, mountPath: {{ $root.Values.dataDir | quote }}}
        - {name: tmp, mountPath: /tmp}
  volumes:
    {{- if not (and $stateful $w.persistence.enabled) }}
    - name: data
      emptyDir: {}
    {{- end }}
    - name: tmp
      emptyDir: {}
  {{- if $w.spreadAcrossNodes }}
  topologySpreadConstraints:
    - maxSkew: 1
      topologyKey: kubernetes.io/hostname
      whenUnsatisfiable: ScheduleAnyway
      labelSelector:
        matchLabels: {{- include "carryover.workerSelectorLabels" . | nindent 10 }}
  {{- end }}
  {{- with $w.nodeSelector }}
  nodeSelector: {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $w.tolerations }}
  tolerations: {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $w.affinity }}
  affinity: {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end -}}
