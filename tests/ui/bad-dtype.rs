bp::network! {
    #[dtype(f16)]
    struct Net {
        input x: [4];
        let h = linear(x, 3);
        output h;
    }
}

fn main() {}
