"""The batch layer: the transaction history lake and the analytics run on it.

Every analysis is a function from a lake DataFrame to a small result DataFrame, so tests call it on
a hand-built frame and the Dagster assets (darooghe_assets/assets/batch.py) call it on the lake:

- `lake`                  Kafka `darooghe.valid_transactions` -> Parquet by event date, exactly once
- `columns`               shared derived columns: approved-only scope, Tehran local time, part of day
- `commission_efficiency` commission by merchant category
- `commission_models`     flat / progressive / tiered simulated per category, recommendation, UDF
- `temporal_patterns`     hour x weekday, peak hours, part of day per category, spending trend
- `customer_profiles`     per-customer figures (the fraud job's historical averages)
- `customer_segments`     RFM scores and readable segment names, with a summary
- `category_comparison`   merchant categories side by side
- `merchants`             the generator's merchant register: Kafka `darooghe.merchants` -> `merchants`
- `business_hours`, `off_hours`  payments outside the merchant's business hours (from `merchants`)
- `merchant_spikes`       merchants whose hourly volume jumps far above their recent baseline
- `daily_activity`        the long-term daily fact the MongoDB aggregation summaries run on
- `documents`, `transactions_store`, `summaries` (writes through darooghe.mongo_write)  MongoDB storage

Scope rule: commission and spending figures count approved transactions only; volume
figures count every valid transaction.
"""
