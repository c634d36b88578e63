"""Test helpers shipped with the package (tiny offline models, fixtures' builders)."""
