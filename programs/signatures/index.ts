export { parseSignatureText, parseTypeExpression } from "./parse.ts";
export { describeFieldIssues, schemaOfType } from "./schema.ts";
export { fieldsSignature, type Signature, signature, signatureOf, type Validation } from "./signature.ts";
export { SignatureSyntaxError } from "./syntax-error.ts";
export { formatType, type TypeNode } from "./types.ts";
