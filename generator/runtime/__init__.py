"""Runtime code of generated services: the mapping engine and its named transforms.

Generated services get a verbatim copy of this package, so its modules import only
the standard library, phonenumbers, email-validator, PyYAML and each other, and
read their data files relative to this folder.
"""
