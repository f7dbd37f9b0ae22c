"""Rabt: scaffold store-to-CRM integration projects for online stores in Saudi Arabia."""

__version__ = "0.1.0"
