"""The render stage: Markdown, the theme's templates, MJML and inlining, plain text, checks."""

# Stands where each recipient's unsubscribe URL goes; sending substitutes it per recipient.
# A URL of the reserved .invalid domain: every stage passes it through untouched.
UNSUBSCRIBE_PLACEHOLDER = "https://unsubscribe.compose.invalid/personal-link"
# Likewise each recipient's preferences page (`compose serve` /preferences/<the same token>).
PREFERENCES_PLACEHOLDER = "https://preferences.compose.invalid/personal-link"
# With `tracking.per_recipient`, each click link ends in `?r=` and this: each reader's delivery
# id, filled in like the links above (a bare word: it sits inside a URL's query).
READER_PLACEHOLDER = "zqREADERIDqz"
