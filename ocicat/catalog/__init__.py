"""The catalog in PostgreSQL: every write (``writes``) and read (``reads``) of it, and who may see what
(``visibility``). Nothing else in ocicat holds catalog SQL."""
