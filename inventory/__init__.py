"""Inventory: products, prices, stock per SKU and reservations (write side)."""
