"""The default theme, shipped as package data: the email templates, the stylesheet and every page.

A project's own `templates/` folder overrides it file by file (see composer.render.templates).
"""
