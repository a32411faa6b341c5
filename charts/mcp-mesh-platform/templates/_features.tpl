{{/* The seed's feature-flag template ("Example 2: Environment-Specific Features"), as it
     was written there: the features of the environment named by .Values.global.environment. */}}
{{- define "features" -}}
{{- $env := .Values.global.environment | default "development" -}}
features:
  # Development features
  {{- if eq $env "development" }}
  debugEndpoints: true
  mockExternalServices: true
  unlimitedRateLimit: true
  {{- end }}

  # Staging features
  {{- if eq $env "staging" }}
  canaryDeployment: true
  abTesting: true
  syntheticMonitoring: true
  {{- end }}

  # Production features
  {{- if eq $env "production" }}
  auditLogging: true
  complianceMode: true
  disasterRecovery: true
  {{- end }}
{{- end }}

{{- define "platform.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/part-of: mcp-mesh
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}
