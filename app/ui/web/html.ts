/** Tagged templates for Preact: text is always set as text, never parsed as markup. */
export { html } from "htm/preact";
