{{- define "bellwether.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "bellwether.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else if contains (include "bellwether.name" .) .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name (include "bellwether.name" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "bellwether.selectorLabels" -}}
app.kubernetes.io/name: {{ include "bellwether.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end }}

{{- define "bellwether.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "bellwether.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "bellwether.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "bellwether.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "bellwether.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{- /* Cluster-wide mode watches every namespace; namespaced mode only watchNamespaces. */}}
{{- define "bellwether.clusterwide" -}}
{{- if not .Values.watchNamespaces }}true{{ end }}
{{- end }}

{{- define "bellwether.peering" -}}
{{- if gt (int .Values.replicas) 1 }}true{{ end }}
{{- end }}

{{- define "bellwether.peeringName" -}}
{{- default (include "bellwether.fullname" .) .Values.peering.name }}
{{- end }}

{{- /* What the values schema cannot say: rules across several values. */}}
{{- define "bellwether.validate" -}}
{{- if eq (int .Values.metrics.port) (int .Values.healthPort) }}
{{- fail (printf "metrics.port and healthPort must differ (both are %d)" (int .Values.healthPort)) }}
{{- end }}
{{- if and .Values.podDisruptionBudget.enabled (lt (int .Values.replicas) 2) }}
{{- fail "podDisruptionBudget.enabled needs replicas >= 2: with one replica it either blocks node drains or protects nothing" }}
{{- end }}
{{- with .Values.notifications }}
{{- if and .enabled (not .secretName) }}
{{- fail "notifications.secretName is required when notifications.enabled is true: the Secret holding the receiver's URL" }}
{{- end }}
{{- $ns := .secretNamespace | default $.Release.Namespace }}
{{- if and .enabled $.Values.watchNamespaces (not (has $ns $.Values.watchNamespaces)) }}
{{- fail (printf "notifications.secretNamespace %s must be one of watchNamespaces: in namespaced mode the operator reads Secrets only there" $ns) }}
{{- end }}
{{- end }}
{{- end }}

{{- /*
Who manages the ModelDeployment CRD when it is not this release: "" when the CRD does not exist yet, or
carries this release's ownership metadata (the label and two annotations Helm checks before it takes an
existing object into a release); otherwise a phrase naming the manager. `lookup` answers only when Helm
talks to the cluster (`helm install|upgrade`, `--dry-run=server`); `helm template` and
`--dry-run=client` see no CRD, so they always render it.
*/}}
{{- define "bellwether.crd.foreignOwner" -}}
{{- include "bellwether.crd.foreignOwnerOf" (list . "modeldeployments.bellwether.dev") }}
{{- end }}

{{- /* The same for any CRD: called with (list $ "<name of the CRD>"). */}}
{{- define "bellwether.crd.foreignOwnerOf" -}}
{{- $name := index . 1 }}
{{- with index . 0 }}
{{- $crd := lookup "apiextensions.k8s.io/v1" "CustomResourceDefinition" "" $name }}
{{- if $crd }}
{{- $annotations := $crd.metadata.annotations | default dict }}
{{- $labels := $crd.metadata.labels | default dict }}
{{- $release := get $annotations "meta.helm.sh/release-name" }}
{{- $namespace := get $annotations "meta.helm.sh/release-namespace" }}
{{- $helm := eq (get $labels "app.kubernetes.io/managed-by") "Helm" }}
{{- if not (and $helm (eq $release .Release.Name) (eq $namespace .Release.Namespace)) }}
{{- if $release }}
{{- printf "by the Helm release %s in namespace %s" $release $namespace }}
{{- else }}
{{- print "outside Helm (kubectl apply, GitOps)" }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}

{{- /*
Whether this release renders the CRD ("true" or ""). Decided at install by looking the CRD up
(bellwether.crd.foreignOwner), and remembered on the operator's Deployment (annotation
bellwether.dev/crd-managed): once the CRD is in the release, every upgrade keeps it there, whatever
became of its ownership metadata meanwhile (`kubectl replace` strips it). An upgrade that left it out
would make Helm delete it, and every ModelDeployment with it. A CRD handed over later (annotated for
this release) is taken in by the next upgrade.
*/}}
{{- define "bellwether.crd.managed" -}}
{{- include "bellwether.crd.managedOf" (list . "modeldeployments.bellwether.dev" "bellwether.dev/crd-managed") }}
{{- end }}

{{- /*
The same for any CRD, decided on its own: called with (list $ "<name of the CRD>" "<annotation that
remembers it>"). The ClusterAnalysisTemplate CRD uses it, so an installation whose ModelDeployment CRD
was applied with kubectl still gets the template CRD, and the other way round.
*/}}
{{- define "bellwether.crd.managedOf" -}}
{{- $name := index . 1 }}
{{- $annotation := index . 2 }}
{{- with index . 0 }}
{{- if .Values.crds.install }}
{{- $deployment := lookup "apps/v1" "Deployment" .Release.Namespace (include "bellwether.fullname" .) | default dict }}
{{- $remembered := dig "metadata" "annotations" $annotation "" $deployment }}
{{- if or (eq $remembered "true") (not (include "bellwether.crd.foreignOwnerOf" (list . $name))) }}true{{ end }}
{{- end }}
{{- end }}
{{- end }}

{{- /* Whether this release renders the ClusterAnalysisTemplate CRD ("true" or ""). */}}
{{- define "bellwether.templateCrd.managed" -}}
{{- include "bellwether.crd.managedOf" (list . "clusteranalysistemplates.bellwether.dev" "bellwether.dev/template-crd-managed") }}
{{- end }}
