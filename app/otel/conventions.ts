/**
 * The OpenTelemetry attribute names dspex writes. The GenAI ones are still "incubating" in
 * @opentelemetry/semantic-conventions, whose authors ask libraries to copy them rather than import the
 * unstable entry point (they may change in a minor release); the stable ones come from the package.
 */
export {
  ATTR_ERROR_TYPE,
  ATTR_SERVICE_INSTANCE_ID,
  ATTR_SERVICE_NAME,
} from "@opentelemetry/semantic-conventions";

export const ATTR_GEN_AI_OPERATION_NAME = "gen_ai.operation.name";
export const ATTR_GEN_AI_PROVIDER_NAME = "gen_ai.provider.name";
/** Deprecated for gen_ai.provider.name, still the one many backends read: dspex writes both. */
export const ATTR_GEN_AI_SYSTEM = "gen_ai.system";
export const ATTR_GEN_AI_REQUEST_MODEL = "gen_ai.request.model";
export const ATTR_GEN_AI_RESPONSE_MODEL = "gen_ai.response.model";
export const ATTR_GEN_AI_REQUEST_TEMPERATURE = "gen_ai.request.temperature";
export const ATTR_GEN_AI_REQUEST_MAX_TOKENS = "gen_ai.request.max_tokens";
export const ATTR_GEN_AI_USAGE_INPUT_TOKENS = "gen_ai.usage.input_tokens";
export const ATTR_GEN_AI_USAGE_OUTPUT_TOKENS = "gen_ai.usage.output_tokens";
export const ATTR_GEN_AI_INPUT_MESSAGES = "gen_ai.input.messages";
export const ATTR_GEN_AI_OUTPUT_MESSAGES = "gen_ai.output.messages";
export const ATTR_GEN_AI_WORKFLOW_NAME = "gen_ai.workflow.name";
export const ATTR_SESSION_ID = "session.id";

export const GEN_AI_OPERATION_CHAT = "chat";
export const GEN_AI_OPERATION_INVOKE_WORKFLOW = "invoke_workflow";

/** LiteLLM's provider prefixes whose GenAI name differs from the prefix. */
const providerNames: Readonly<Record<string, string>> = {
  gemini: "gcp.gemini",
  vertex_ai: "gcp.vertex_ai",
  bedrock: "aws.bedrock",
  azure: "azure.ai.openai",
  azure_ai: "azure.ai.inference",
  mistral: "mistral_ai",
  xai: "x_ai",
  watsonx: "ibm.watsonx.ai",
};

/**
 * The GenAI provider of a LiteLLM model id: its prefix (`openai/gpt-4o-mini` → `openai`), renamed where
 * the conventions name it otherwise; `litellm` when the id has no prefix (LiteLLM then guesses).
 */
export const providerOf = (model: string): string => {
  const slash = model.indexOf("/");
  if (slash <= 0) return "litellm";
  const prefix = model.slice(0, slash);
  return providerNames[prefix] ?? prefix;
};
