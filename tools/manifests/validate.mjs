// Validates every Kubernetes manifest under the given folders against the Kubernetes (and Prometheus Operator)
// OpenAPI schemas, with the pinned npm packages `kubernetes-models` and `@kubernetes-models/prometheus-operator`,
// and checks that each folder's kustomization lists exactly its manifests.
// Usage: node tools/manifests/validate.mjs deploy/kubernetes [...]   Exit 0 when all are valid; each problem is one line.
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";
import { Namespace, ServiceAccount, ConfigMap, Service } from "kubernetes-models/v1";
import { Deployment } from "kubernetes-models/apps/v1";
import { Job } from "kubernetes-models/batch/v1";
import { PodDisruptionBudget } from "kubernetes-models/policy/v1";
import { Role, RoleBinding } from "kubernetes-models/rbac.authorization.k8s.io/v1";
import { ServiceMonitor } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1";

const models = {
  "v1/Namespace": Namespace, "v1/ServiceAccount": ServiceAccount, "v1/ConfigMap": ConfigMap, "v1/Service": Service,
  "apps/v1/Deployment": Deployment, "batch/v1/Job": Job, "policy/v1/PodDisruptionBudget": PodDisruptionBudget,
  "rbac.authorization.k8s.io/v1/Role": Role, "rbac.authorization.k8s.io/v1/RoleBinding": RoleBinding,
  "monitoring.coreos.com/v1/ServiceMonitor": ServiceMonitor,
};

const problems = [];
let checked = 0;
for (const folder of process.argv.slice(2)) {
  const files = readdirSync(folder).filter((f) => f.endsWith(".yaml")).sort();
  if (!files.includes("kustomization.yaml")) problems.push(`${folder}: no kustomization.yaml`);
  for (const file of files) {
    const path = join(folder, file);
    for (const document of parseAllDocuments(readFileSync(path, "utf8"))) {
      if (document.errors.length > 0) { problems.push(`${path}: ${document.errors[0].message}`); continue; }
      const manifest = document.toJS();
      if (manifest === null) continue;
      if (manifest.kind === "Kustomization") {
        const listed = [...(manifest.resources ?? [])].sort();
        const present = files.filter((f) => f !== "kustomization.yaml");
        if (JSON.stringify(listed) !== JSON.stringify(present)) problems.push(`${path}: resources ${listed.join(", ")} differ from the folder's manifests ${present.join(", ")}`);
        continue;
      }
      const Model = models[`${manifest.apiVersion}/${manifest.kind}`];
      if (Model === undefined) { problems.push(`${path}: no schema for ${manifest.apiVersion} ${manifest.kind}`); continue; }
      try {
        new Model(manifest).validate();
        checked++;
      } catch (error) {
        problems.push(`${path}: ${manifest.kind} ${manifest.metadata?.name}: ${error.message.split("\n").join("; ")}`);
      }
    }
  }
}
for (const problem of problems) console.error(`manifests: ${problem}`);
console.log(`manifests: ${checked} valid, ${problems.length} problems`);
process.exit(problems.length === 0 && checked > 0 ? 0 : 1);
