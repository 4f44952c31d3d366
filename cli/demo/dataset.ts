import type { Example } from "../../streams/events/index.ts";

export const categories = ["billing", "technical", "account", "shipping"] as const;
export type Category = (typeof categories)[number];

/**
 * Labelled support messages the project wrote for the main job: the category is what's graded.
 * billing: money (charges, invoices, refunds, prices, payment methods); technical: the product misbehaving;
 * account: identity and access (sign-in, 2FA, members, profile, deletion); shipping: physical delivery
 * and returns of goods.
 */
const messages: Record<Category, readonly string[]> = {
  billing: [
    "I was charged twice for my subscription this month.",
    "Where can I download the invoice for March?",
    "How long does a refund take to reach my card?",
    "If I upgrade my plan now, what will I pay?",
    "My credit card payment failed but the money left my account.",
    "Can I get a receipt with my company's VAT number?",
    "Why is this month's bill higher than usual?",
    "Do you accept PayPal or only credit cards?",
    "The discount code SPRING20 wasn't applied at checkout.",
    "I cancelled my trial but you still billed me $49.",
    "Can we switch from monthly to annual billing and get the discount?",
    "Please update the billing address on our invoices to our new office.",
    "There's a charge from you on my statement that I don't recognize.",
    "Is sales tax included in the price shown on the pricing page?",
    "My card expires next month, how do I put a new one on file?",
    "We were invoiced for 25 seats but we only have 18 users.",
    "Can I pay by bank transfer instead of card? Our finance team prefers it.",
    "The prorated credit from my downgrade never showed up.",
    "hi, why did u charge me in euros, I'm in the US",
    "Do you offer a discount for nonprofits or students?",
    "I need a copy of every invoice from last year for our auditors.",
    "My payment was declined even though the card works everywhere else.",
    "When exactly will my next renewal payment be taken?",
    "I'd like a refund for the annual plan I bought by mistake yesterday.",
    "The price went up without any notice, is that right?",
    "Can you split the invoice between two cost centers?",
    "Why am I seeing a pending authorization of $1 on my card?",
    "Your agent promised me a partial credit last week, where is it?",
    "How do I stop automatic renewal so I'm not charged again?",
    "Our purchase order number needs to appear on the invoice.",
    "Is there a fee for paying late?",
    "The checkout page showed a total of $0 but then charged me $30.",
    "Please remove the charge for the add-on I never used.",
    "Can I get my money back for the unused months if I cancel now?",
    "Do you charge extra for more than 10 GB of storage?",
    "What currencies can I be billed in?",
  ],
  technical: [
    "The app crashes every time I open the reports page.",
    "Sync keeps failing with a network error on my laptop.",
    "Your API returns 429 errors for every request.",
    "The dashboard is extremely slow since yesterday.",
    "Exports to CSV produce an empty file.",
    "Notifications stopped arriving on my phone after the update.",
    "The editor freezes when I paste a large table.",
    "I get a blank white screen after logging in on Safari.",
    "The webhook to our Slack channel stopped firing last night.",
    "Uploading a PDF larger than 5 MB always times out.",
    "Dark mode makes the chart labels unreadable.",
    "The Android app drains my battery even when it's closed.",
    "Search returns no results for words I know are in my documents.",
    'The Zapier integration throws "invalid token" on every run.',
    "Dates in the calendar view show up one day off.",
    "After the latest release the print button does nothing.",
    "I keep getting error 500 when saving a form with an attachment.",
    "The desktop client won't install on Windows 11, it says the package is corrupt.",
    "Images in my shared folder show as broken links.",
    "Keyboard shortcuts don't work in Firefox.",
    "The import from Excel mixes up the columns.",
    "our team's video calls in the app keep dropping after 10 minutes",
    "The graphs don't refresh unless I reload the whole page.",
    "The iOS widget still shows data from last week.",
    "Offline mode loses my edits when I reconnect.",
    "The API docs say the endpoint accepts JSON but it rejects every body I send.",
    "Emails sent from the app arrive with broken formatting.",
    "The spell checker underlines every word when I write in German.",
    "Copy and paste from Word inserts strange characters.",
    "My automation rules run twice for every new ticket.",
    "The map view never finishes loading on my tablet.",
    'The CLI tool exits with "segmentation fault" on Linux.',
    "Attachments downloaded from the app are zero bytes.",
    "Two-way sync with Google Calendar creates duplicate events.",
    "The page layout is broken on small screens since Tuesday.",
    "Voice notes recorded in the app have no sound when played back.",
  ],
  account: [
    "I forgot my password and the reset link expired.",
    "I lost my phone with the two-factor app on it.",
    "How do I delete my account and all my data?",
    "I want to change the email address I sign in with.",
    "Can I add a second admin to our workspace?",
    "My account is locked after too many login attempts.",
    "How do I transfer ownership of the account to a colleague?",
    "I never received the email to verify my new account.",
    "How can I change my username?",
    "Someone logged into my account from another country, please help.",
    "Can I merge my two accounts into one?",
    "How do I remove a former employee's access to our team?",
    "I signed up with Google, can I set a password too?",
    "Please reactivate the account I closed last month.",
    "Where do I update the phone number that gets my login codes?",
    "I want a copy of all the personal data you hold about me.",
    "How do I turn on two-factor authentication?",
    "My colleague's invitation to our workspace expired, how do I send a new one?",
    "Can I change a member's role from editor to viewer?",
    "My name is misspelled on my profile and I can't edit it.",
    "how do i log out of all devices at once",
    "My account was suspended and nobody told me why.",
    "Please unlink my Facebook login from my account.",
    "Can guests view our boards without creating an account?",
    "I need to get back into an account that used my old university email.",
    "Where do I change my account's language and time zone?",
    "Can I restrict sign-ups to people with our company email domain?",
    "I can't answer my security questions, so I can't prove it's me.",
    "Can I rename our workspace and change its URL?",
    'I get "user not found" when I log in with the email I registered with.',
    "My father passed away; how do we close his account?",
    "Can I switch my personal account to a business account?",
    "The username I want is taken by an inactive account, can you release it?",
    "How do I hide my profile from people outside my organisation?",
    "Can I sign in with Apple instead of my email and password?",
    "My teenager created an account without permission, please remove it.",
  ],
  shipping: [
    "My package has not arrived after two weeks.",
    "Where do I find the tracking number for my order?",
    "The item arrived broken, what can I do?",
    "How do I return a jacket that doesn't fit?",
    "Do you offer express delivery to Canada?",
    "The courier left my parcel at the wrong address.",
    "Can I change the delivery address after ordering?",
    'Tracking has said "out for delivery" for three days.',
    "Only two of the three items I ordered were in the box.",
    "Do you ship to PO boxes?",
    "My order is stuck in customs, what paperwork do you need?",
    "Can I pick up my order from a store instead of having it delivered?",
    "The box was delivered open and the headphones are missing.",
    "How long does standard shipping to Australia take?",
    "I received someone else's order instead of mine.",
    "Can you hold my delivery until I'm back from holiday on the 20th?",
    "The return label you emailed doesn't scan at the post office.",
    "Do you deliver on Saturdays?",
    "The driver says nobody was home but I was there all day.",
    "I ordered the blue mug and got a red one.",
    "Can I send the gift straight to my sister at her address?",
    "Which carrier do you use for deliveries to Ireland?",
    'My tracking link shows "label created" for a week and nothing since.',
    "The parcel was marked as delivered but it's not in my mailbox.",
    "How do I exchange these shoes for a bigger size?",
    "Can several orders be combined into one shipment?",
    "My delivery arrived soaking wet and the books are ruined.",
    "Is it possible to ship to the hotel where I'm staying next week?",
    "When will the back-ordered chair be dispatched?",
    "Can I schedule the furniture delivery for a specific morning?",
    "The package was returned to you as undeliverable, can you resend it?",
    "How long do I have to send back an item I don't want?",
    "The pallet delivery needs a truck with a tail lift, can you arrange that?",
    "my order confirmation said 3-5 days but it's been 10",
    "The tracking number you sent belongs to a different country's postal service.",
    "The courier wants a signature but I can't be home, can they leave it with a neighbour?",
  ],
};

type Split = "train" | "dev" | "test";

/** Every third message of a category goes to each split; within a split the categories take turns. */
const split = (name: Split): Example[] => {
  const offset = { train: 0, dev: 1, test: 2 }[name];
  const perCategory = categories.map((category) =>
    messages[category].filter((_, i) => i % 3 === offset).map((message) => ({ category, message })),
  );
  const rounds = Math.max(...perCategory.map((list) => list.length));
  const interleaved = Array.from({ length: rounds }, (_, round) =>
    perCategory.flatMap((list) => list[round] ?? []),
  ).flat();
  return interleaved.map(({ category, message }, i) => ({
    id: `${name}-${i + 1}`,
    inputs: { message },
    expected: { category },
  }));
};

/** What the optimizers learn from; the bootstrap walks it in order, so the categories take turns. */
export const trainset: Example[] = split("train");
/** What the optimizers score candidates on. */
export const devset: Example[] = split("dev");
/** Held out: no optimizer sees it; the before/after scores of the main job are on it. */
export const testset: Example[] = split("test");
