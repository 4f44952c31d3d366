/** The support FAQ the bundled program retrieves from. */
export const faq: readonly string[] = [
  "Refunds: a refund goes back to the original payment method within 5 to 7 business days after we approve it.",
  "Double charges: if your card was charged twice, the duplicate authorization drops off within 3 days; contact billing if it stays.",
  "Invoices: download every invoice as a PDF from Settings > Billing > Invoices.",
  "Plans: you can upgrade or downgrade your plan at any time; the difference is prorated on the next invoice.",
  "Password reset: use 'Forgot password' on the sign-in page; the reset link expires after 30 minutes.",
  "Two-factor authentication: if you lost your 2FA device, use a backup code or ask support to verify your identity.",
  "Closing an account: account owners can delete the account from Settings > Account > Delete; data is erased after 30 days.",
  "Changing email: update the sign-in email from Settings > Profile; we send a confirmation to both addresses.",
  "App crashes: update to the latest version, clear the cache, and send us the crash report from Help > Diagnostics.",
  "Sync errors: sync needs a stable connection; sign out and back in to rebuild the local cache.",
  "API errors: HTTP 429 means you hit the rate limit; retry with exponential backoff or raise your plan's quota.",
  "Slow performance: disable browser extensions and check status.example.com for incidents.",
  "Shipping times: standard shipping takes 3 to 5 business days, express 1 to 2.",
  "Tracking: the tracking number is in your shipping confirmation email and under Orders.",
  "Damaged items: send a photo of the damaged item within 14 days and we ship a replacement for free.",
  "Returns: return unused items within 30 days with the prepaid label from the Orders page.",
];
