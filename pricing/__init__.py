"""The pricing context: price lists, tax rates, promotions and coupons."""
