"""nuwa_inf.tokenizer"""
