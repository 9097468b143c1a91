print("payhook")
