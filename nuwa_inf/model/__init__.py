"""nuwa_inf.model"""
