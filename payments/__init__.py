"""Payments: charging and refunding orders through a payment gateway (write side)."""
