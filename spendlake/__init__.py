"""spendlake: a privacy-first Singer pipeline for digital-marketing data."""
