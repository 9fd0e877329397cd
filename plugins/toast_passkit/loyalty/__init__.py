"""Loyalty rules: program file, guest identity, ledger, tiers, rewards, pass states."""
