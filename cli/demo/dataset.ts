import type { Example } from "../../streams/events/index.ts";

/** Labelled support messages the project wrote for the main job: the category is what's graded. */
const labelled: ReadonlyArray<readonly [category: string, message: string]> = [
  ["billing", "I was charged twice for my subscription this month."],
  ["billing", "Where can I download the invoice for March?"],
  ["billing", "How long does a refund take to reach my card?"],
  ["billing", "If I upgrade my plan now, what will I pay?"],
  ["billing", "My credit card payment failed but the money left my account."],
  ["billing", "Can I get a receipt with my company's VAT number?"],
  ["billing", "Why is this month's bill higher than usual?"],
  ["technical", "The app crashes every time I open the reports page."],
  ["technical", "Sync keeps failing with a network error on my laptop."],
  ["technical", "Your API returns 429 errors for every request."],
  ["technical", "The dashboard is extremely slow since yesterday."],
  ["technical", "Exports to CSV produce an empty file."],
  ["technical", "Notifications stopped arriving on my phone after the update."],
  ["technical", "The editor freezes when I paste a large table."],
  ["account", "I forgot my password and the reset link expired."],
  ["account", "I lost my phone with the two-factor app on it."],
  ["account", "How do I delete my account and all my data?"],
  ["account", "I want to change the email address I sign in with."],
  ["account", "Can I add a second admin to our workspace?"],
  ["account", "My account is locked after too many login attempts."],
  ["account", "How do I transfer ownership of the account to a colleague?"],
  ["shipping", "My package has not arrived after two weeks."],
  ["shipping", "Where do I find the tracking number for my order?"],
  ["shipping", "The item arrived broken, what can I do?"],
  ["shipping", "How do I return a jacket that doesn't fit?"],
  ["shipping", "Do you offer express delivery to Canada?"],
  ["shipping", "The courier left my parcel at the wrong address."],
  ["shipping", "Can I change the delivery address after ordering?"],
];

export const categories = ["billing", "technical", "account", "shipping"] as const;

const asExample = ([category, message]: readonly [string, string], index: number): Example => ({
  id: `triage-${index + 1}`,
  inputs: { message },
  expected: { category },
});

const examples = labelled.map(asExample);

/** Per category: the first four messages train, the last three are held out for the dev set. */
export const trainset: Example[] = examples.filter((_, i) => i % 7 < 4);
export const devset: Example[] = examples.filter((_, i) => i % 7 >= 4);
