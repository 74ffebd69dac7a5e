"""Who an issue goes to: subscriber lists, segments and suppressions, streamed and checked.

The public API other stages use:

- `select(project, list_name, segment=None, *, skip_invalid=False) -> Selection`
- `Recipient` (email, key, name, attributes, line)
- `suppressions.load_suppressed / is_suppressed / add_suppressions / suppression_rows`
- `check_lists(project, names)`, `import_list(project, source, list_name)`
"""

from __future__ import annotations

from composer.audience import suppressions
from composer.audience.checking import ListReport, check_lists
from composer.audience.importer import ImportReport, import_list
from composer.audience.lists import Recipient, Recipients, Selection, list_names, list_path, select
from composer.audience.records import address_key

__all__ = [
    "ImportReport",
    "ListReport",
    "Recipient",
    "Recipients",
    "Selection",
    "address_key",
    "check_lists",
    "import_list",
    "list_names",
    "list_path",
    "select",
    "suppressions",
]
