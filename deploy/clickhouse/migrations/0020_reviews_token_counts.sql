-- Per review, the tokens the model saw (after truncation, without special tokens) and how
-- many of them its tokenizer did not know ([UNK]): model.predictor.Prediction.tokens and
-- unknown_tokens, for drift monitoring. Rows stored before this migration read 0 and 0
-- ("not counted"). 18.16 has no ADD COLUMN IF NOT EXISTS: the migrations ledger runs this
-- once per database.
ALTER TABLE reviews
    ADD COLUMN tokens UInt16 DEFAULT 0,
    ADD COLUMN unknown_tokens UInt16 DEFAULT 0
