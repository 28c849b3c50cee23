"""schemathesis hooks for openapi.json: the formats JSON Schema cannot state.

`bifrost-provider-name` (every `{provider}` path parameter): JSON Schema's `maxLength` counts
characters, while the contract bounds a name at 64 bytes of UTF-8 (`x-bifrost-max-bytes`). Names
drawn for this format hold to every rule the server applies, so that a name schemathesis
believes valid is one the server takes.
"""

import schemathesis
from hypothesis import strategies as st

# Control characters (C0, DEL, C1), surrogates and `/` are never part of a name.
_NAME_CHARACTERS = st.characters(
    blacklist_categories=("Cc", "Cs"), blacklist_characters="/"
)

schemathesis.openapi.format(
    "bifrost-provider-name",
    st.text(_NAME_CHARACTERS, min_size=1, max_size=64).filter(
        lambda name: name.strip() != "" and len(name.encode("utf-8")) <= 64
    ),
)
