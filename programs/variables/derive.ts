import type { SignatureSpec } from "../../streams/events/common.ts";
import type { VariableDeclaration } from "../../streams/events/variables.ts";

/**
 * Variables a signature suggests: a `probability` output gets a decision threshold in 0..1, a
 * `confidence` output a minimum confidence to accept it.
 */
export const deriveVariables = (signature: SignatureSpec): VariableDeclaration[] =>
  signature.outputs.flatMap((field): VariableDeclaration[] => {
    if (field.type === "probability") {
      const min = field.constraints?.min ?? 0;
      const max = field.constraints?.max ?? 1;
      return [
        {
          name: `${field.name}_threshold`,
          spec: { kind: "float", min, max, precision: 2 },
          initial: Math.min(max, Math.max(min, 0.5)),
          description: `decide positive when ${field.name} is at least this`,
        },
      ];
    }
    if (field.type === "confidence")
      return [
        {
          name: `${field.name}_min`,
          spec: { kind: "float", min: 0, max: field.constraints?.max ?? 1, precision: 2 },
          initial: 0,
          description: `accept the output when ${field.name} is at least this`,
        },
      ];
    return [];
  });
