"""Knowledge stores: load documents, chunk, embed, store in Chroma, retrieve for runs.

Import the submodules you need (`playground.rag.store`, `playground.rag.retrieval`); this package
imports nothing heavy so that `import playground.rag` stays cheap.
"""
