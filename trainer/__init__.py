"""Training, evaluation and export of serapp model bundles. Imports serapp; never the reverse."""
