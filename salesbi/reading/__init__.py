"""Reading a company's CSV files through a profile into canonical frames."""
