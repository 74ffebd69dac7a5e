"""The web side, one Starlette stack: `compose serve`'s public pages (composer.web.app) and
`compose preview` (composer.web.preview). Importing one does not import the other.
"""
