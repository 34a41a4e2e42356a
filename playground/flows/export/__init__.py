"""One module per export target (PromptFlow, Prompty, plain Python) and what they share.

Nothing a spec holds is spliced into generated text: strings reach Python through `repr` (and a
check that the literal reads back as the same value), YAML through the YAML dumper, and Jinja
templates only after the checks in `safety` (no line that a target would read as structure).
"""
