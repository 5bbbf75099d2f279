"""Orders: customers and the order lifecycle (write side)."""
