-- The Nexmark tables read from CSV files (one per event kind) instead of the generator:
-- `sluice-bench nexmark --csv DIR` writes them; ${CSV_DIR} is that directory. Use with a
-- query file in place of ddl_gen.sql and ddl_views.sql.
CREATE TABLE person (
    id  BIGINT,
    name  VARCHAR,
    emailAddress  VARCHAR,
    creditCard  VARCHAR,
    city  VARCHAR,
    state  VARCHAR,
    dateTime TIMESTAMP(3),
    extra  VARCHAR,
    WATERMARK FOR dateTime AS dateTime - INTERVAL '4' SECOND
) WITH (
    'connector' = 'filesystem',
    'path' = '${CSV_DIR}/person.csv',
    'format' = 'csv'
);

CREATE TABLE auction (
    id  BIGINT,
    itemName  VARCHAR,
    description  VARCHAR,
    initialBid  BIGINT,
    reserve  BIGINT,
    dateTime  TIMESTAMP(3),
    expires  TIMESTAMP(3),
    seller  BIGINT,
    category  BIGINT,
    extra  VARCHAR,
    WATERMARK FOR dateTime AS dateTime - INTERVAL '4' SECOND
) WITH (
    'connector' = 'filesystem',
    'path' = '${CSV_DIR}/auction.csv',
    'format' = 'csv'
);

CREATE TABLE bid (
    auction  BIGINT,
    bidder  BIGINT,
    price  BIGINT,
    channel  VARCHAR,
    url  VARCHAR,
    dateTime  TIMESTAMP(3),
    extra  VARCHAR,
    WATERMARK FOR dateTime AS dateTime - INTERVAL '4' SECOND
) WITH (
    'connector' = 'filesystem',
    'path' = '${CSV_DIR}/bid.csv',
    'format' = 'csv'
);
