"""The render stage: Markdown, the theme's templates, MJML and inlining, plain text, checks."""

# Stands where each recipient's unsubscribe URL goes; sending substitutes it per recipient.
# A URL of the reserved .invalid domain: every stage passes it through untouched.
UNSUBSCRIBE_PLACEHOLDER = "https://unsubscribe.compose.invalid/personal-link"
# Likewise each recipient's preferences page (`compose serve` /preferences/<the same token>).
PREFERENCES_PLACEHOLDER = "https://preferences.compose.invalid/personal-link"
